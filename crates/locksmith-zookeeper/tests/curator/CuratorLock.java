// Takes an Apache Curator InterProcessMutex on a path, for the interop test: prints WAITING,
// then HELD once acquired (with the lock node's name), holds until a line arrives on stdin,
// releases and prints RELEASED. Run with `java -cp CLASSPATH CuratorLock.java CONNECT PATH`.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.RetryOneTime;

public class CuratorLock {
    public static void main(String[] args) throws Exception {
        try (CuratorFramework client =
                CuratorFrameworkFactory.newClient(args[0], 10000, 5000, new RetryOneTime(100))) {
            client.start();
            InterProcessMutex mutex = new InterProcessMutex(client, args[1]);
            System.out.println("WAITING");
            mutex.acquire();
            System.out.println("HELD " + String.join(",", mutex.getParticipantNodes()));
            new BufferedReader(new InputStreamReader(System.in)).readLine();
            mutex.release();
            System.out.println("RELEASED");
        }
    }
}
